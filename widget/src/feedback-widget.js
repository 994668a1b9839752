/**
 * chat-feedback widget: a chat box for any web page, talking to a chat-feedback app through
 * `@gradio/client` (the app's `/chat`, `/regenerate`, `/rate`, `/flag`, `/forget` and
 * `/feedback_options`).
 *
 * Identity: the widget makes its own `conversation_id` (`crypto.randomUUID()`) once, sends it
 * with every `/chat`, and rates a reply by the `message_id` the app returned for it. With
 * `persist` the id and the transcript are kept in `localStorage`, so a reload continues the
 * conversation; without it, every page load is a new conversation. "Forget this conversation"
 * (confirmed first) deletes the conversation from the app's logs with `/forget` and starts a new one.
 *
 * Consent: with the `consent` option (`data-consent="true"` or `"false"`: the embedding page
 * asked its user), the widget sends it with every `/chat` and `/regenerate`; without it, the app's
 * mode decides (see `/feedback_options`).
 *
 * Failures never lose what the user typed: a message that could not be sent goes back into the
 * input, the error is shown in the widget, and the next action reconnects.
 *
 * Embed it declaratively:
 *   <div data-feedback-chat data-app-url="https://your-app.example" data-persist></div>
 *   <script type="module" src="https://your-app.example/widget/feedback-widget.js"></script>
 * or from code: `mountFeedbackChat(element, { appUrl, persist: true })`.
 */

import { Client } from "@gradio/client";

const ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const MAX_STORED_MESSAGES = 200;
const STORAGE_VERSION = 1;
const SCRIPT_URL = import.meta.url;
const CONNECTION_ERRORS = /Connection errored out|Could not resolve app config|Could not get API info|Failed to fetch|NetworkError|Load failed|network error/i;
const DEFAULT_NOTICE = "Conversations, ratings and flags are recorded to improve the model.";
const NOT_RECORDED_NOTICE = "This chat is not recorded.";
const FORGET_QUESTION = "Delete this conversation from the app's logs? Its messages, ratings and flags are erased. This cannot be undone.";
const FORGOTTEN = "This conversation was deleted from the app's logs. Your next message starts a new conversation.";
const NOTHING_TO_FORGET = "Nothing of this conversation was recorded, so there is nothing to delete. Your next message starts a new conversation.";

/** The `consent` option from an attribute or a value: true, false, or undefined (not given). */
function consentOption(value) {
  if (value === true || value === "true" || value === "") return true;
  if (value === false || value === "false") return false;
  return undefined;
}

/** A new conversation id: a UUID v4 (`crypto.randomUUID()`, or built from `getRandomValues` where
 * `randomUUID` is missing, as on pages served over plain http). */
export function newConversationId() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID();
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The app URL when none is given: the app that served this script (it lives at `<app>/widget/`). */
function defaultAppUrl() {
  return new URL("../", SCRIPT_URL).href;
}

function normaliseUrl(url) {
  return new URL(url, globalThis.location?.href).href.replace(/\/+$/, "");
}

/** `h("button", {class: "x", onclick}, "text", child)`: a DOM element; attributes starting with
 * "on" are listeners, `null`/`false` attributes are left out, strings become text nodes. */
function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.filter((c) => c !== null && c !== undefined));
  return element;
}

const ICONS = {
  like: "M7 10v11H3V10h4Zm2 11h8.3a2 2 0 0 0 2-1.6l1.4-7A2 2 0 0 0 18.7 10H14l.8-4.2A1.7 1.7 0 0 0 11.8 4L9 10v11Z",
  dislike: "M17 14V3h4v11h-4Zm-2-11H6.7a2 2 0 0 0-2 1.6l-1.4 7A2 2 0 0 0 5.3 14H10l-.8 4.2a1.7 1.7 0 0 0 3 1.8l2.8-6V3Z",
  flag: "M5 21V4h10l.5 2H21v10h-7l-.5-2H7v7H5Z",
  regenerate: "M17.7 6.3A8 8 0 1 0 19.9 13h-2.1a6 6 0 1 1-1.5-5.3L13 11h7V4l-2.3 2.3Z",
};

function icon(name) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name]);
  svg.append(path);
  return svg;
}

/** What to tell the user about a failed call: the app's own message (a refusal), or that the app
 * cannot be reached. */
function describeError(error) {
  const message = (error && (error.message || (typeof error === "string" ? error : ""))) || "";
  if (!message || CONNECTION_ERRORS.test(message) || error?.broken) {
    return { connection: true, text: "Cannot reach the chat service. Check your connection and try again." };
  }
  return { connection: false, text: message };
}

/** A chat widget in `element`, talking to the chat-feedback app at `options.appUrl`.
 *
 * Options: `appUrl` (default: the app that served this script), `persist` (keep the conversation
 * across reloads in localStorage), `storageKey` (default `feedback-chat:<appUrl>`), `title`,
 * `notice` (the recording notice; "" for none), `placeholder`, `css` (false: do not load the
 * stylesheet that sits next to this script), `consent` (true: the user agreed to be recorded,
 * false: declined; sent with each message; default: not sent).
 */
export class FeedbackChat {
  constructor(element, options = {}) {
    this.element = element;
    this.appUrl = normaliseUrl(options.appUrl || defaultAppUrl());
    this.persist = Boolean(options.persist);
    this.storageKey = options.storageKey || `feedback-chat:${this.appUrl}`;
    this.title = options.title ?? "Chat";
    this.consent = consentOption(options.consent);
    this.notice = options.notice ?? (this.consent === false ? NOT_RECORDED_NOTICE : DEFAULT_NOTICE);
    this.placeholder = options.placeholder ?? "Type a message…";
    this.clientPromise = null;
    this.feedbackOptions = null;
    this.busy = false;
    this.views = new Map();
    if (options.css !== false) ensureStylesheet();
    const restored = this.persist ? this.load() : null;
    this.conversationId = restored?.conversationId ?? newConversationId();
    this.messages = restored?.messages ?? [];
    this.render();
    this.save();
    this.connect().catch((error) => this.showError(error));
  }

  // -- connection ------------------------------------------------------------------------

  /** The connected client (connecting on first use, and again after a failure). */
  connect() {
    if (!this.clientPromise) {
      this.clientPromise = (async () => {
        const client = await Client.connect(this.appUrl, { events: ["data", "status"], record_history: false });
        const result = await client.predict("/feedback_options", {});
        this.feedbackOptions = result.data[0];
        return client;
      })();
      const promise = this.clientPromise;
      promise.catch(() => {
        if (this.clientPromise === promise) this.clientPromise = null;
      });
    }
    return this.clientPromise;
  }

  /** Forget the client, so the next call connects anew (after the app restarted, say). */
  disconnect() {
    const previous = this.clientPromise;
    this.clientPromise = null;
    previous?.then((client) => client.close(), () => {});
  }

  /** Stream an endpoint that yields `{conversation_id, message_id, response, done}`; calls
   * `onItem` for each and returns the last one (done). Throws on an error or a cut-off stream. */
  async stream(endpoint, data, onItem) {
    const client = await this.connect();
    let last = null;
    for await (const event of client.submit(endpoint, data)) {
      if (event.type === "data") {
        last = event.data[0];
        onItem(last);
      } else if (event.type === "status" && event.stage === "error") {
        throw Object.assign(new Error(event.message || ""), { broken: event.broken });
      }
    }
    if (!last?.done) throw new Error("Connection errored out: the reply was cut off.");
    return last;
  }

  // -- actions ---------------------------------------------------------------------------

  /** Send `text` as the next user message and stream the reply. */
  async send(text) {
    if (this.busy || !text.trim()) return;
    this.setBusy(true);
    const user = { role: "user", text };
    const reply = { role: "assistant", text: "", messageId: null, rating: null, flagged: null, pending: true };
    this.messages.push(user, reply);
    this.clearInfo();
    this.renderMessages();
    try {
      const data = { message: { text, files: [] }, conversation_id: this.conversationId, ...this.consentField() };
      await this.stream("/chat", data, (item) => {
        reply.text = item.response;
        reply.messageId = item.message_id;
        this.updateMessage(reply);
      });
      reply.pending = false;
      this.clearError();
      this.save();
    } catch (error) {
      this.messages.splice(this.messages.indexOf(user), 2);
      this.input.value = this.input.value ? `${text}\n${this.input.value}` : text;
      this.fail(error);
    } finally {
      this.setBusy(false);
      this.renderMessages();
    }
  }

  /** Ask for another reply to the last message; the old reply is replaced (the app records
   * `regenerated_from`). */
  async regenerate(reply) {
    if (this.busy || reply !== this.lastReply()) return;
    this.setBusy(true);
    const before = { ...reply };
    Object.assign(reply, { text: "", pending: true, rating: null, flagged: null });
    this.updateMessage(reply);
    try {
      const data = { conversation_id: this.conversationId, message_id: before.messageId, ...this.consentField() };
      await this.stream("/regenerate", data, (item) => {
        reply.text = item.response;
        reply.messageId = item.message_id;
        this.updateMessage(reply);
      });
      reply.pending = false;
      this.clearError();
      this.save();
    } catch (error) {
      Object.assign(reply, before);
      this.fail(error);
    } finally {
      this.setBusy(false);
      this.renderMessages();
    }
  }

  /** Like, dislike, or (the same button again) undo a rating. */
  async rate(reply, rating) {
    const next = reply.rating === rating ? "" : rating;
    await this.feedback(reply, "/rate", { rating: next }, () => {
      reply.rating = next || null;
    });
  }

  /** Flag a reply with one or more reasons and an optional comment. */
  async flag(reply, reasons, comment) {
    await this.feedback(reply, "/flag", { reasons, comment }, () => {
      reply.flagged = reasons;
      this.views.get(reply).flagForm.hidden = true;
    });
  }

  async feedback(reply, endpoint, fields, onDone) {
    if (reply.sending || !reply.messageId) return;
    reply.sending = true;
    this.updateMessage(reply);
    try {
      const client = await this.connect();
      await client.predict(endpoint, { conversation_id: this.conversationId, message_id: reply.messageId, ...fields });
      onDone();
      this.clearError();
      this.save();
    } catch (error) {
      this.fail(error);
    } finally {
      reply.sending = false;
      this.updateMessage(reply);
    }
  }

  /** `{consent}` for `/chat` and `/regenerate` when the embedding page gave it, else nothing. */
  consentField() {
    return this.consent === undefined ? {} : { consent: this.consent };
  }

  /** Start a new conversation: a new id, an empty transcript. */
  newConversation() {
    if (this.busy) return;
    this.conversationId = newConversationId();
    this.messages = [];
    this.clearError();
    this.clearInfo();
    this.askForget(false);
    this.save();
    this.renderMessages();
  }

  /** Whether the app may hold records of this conversation: a reply it answered, and a consent
   * that lets it record (not declined; agreed where the app requires it). */
  recorded() {
    if (!this.messages.some((m) => m.role === "assistant" && m.messageId && !m.pending)) return false;
    if (this.consent === false) return false;
    return !(this.feedbackOptions?.consent === "required" && this.consent !== true);
  }

  /** Show (or hide) the confirmation of "Forget this conversation". */
  askForget(open = true) {
    this.forgetConfirm.hidden = !open;
    this.forgetButton.setAttribute("aria-expanded", String(open));
    if (open) {
      this.clearInfo();
      this.forgetConfirm.querySelector("button")?.focus();
    }
  }

  /** Delete this conversation from the app's logs (`/forget`), then start a new one. A
   * conversation with nothing recorded is not sent: the widget says so and starts a new one. */
  async forget() {
    if (this.busy) return;
    this.askForget(false);
    if (!this.recorded()) {
      this.newConversation();
      this.showInfo(NOTHING_TO_FORGET);
      return;
    }
    this.setBusy(true);
    try {
      const client = await this.connect();
      await client.predict("/forget", { conversation_id: this.conversationId });
    } catch (error) {
      this.fail(error);
      return;
    } finally {
      this.setBusy(false);
    }
    this.newConversation();
    this.showInfo(FORGOTTEN);
  }

  lastReply() {
    const last = this.messages[this.messages.length - 1];
    return last?.role === "assistant" ? last : null;
  }

  // -- storage ---------------------------------------------------------------------------

  load() {
    try {
      const stored = JSON.parse(localStorage.getItem(this.storageKey) || "null");
      if (stored?.version !== STORAGE_VERSION || !ID_PATTERN.test(stored.conversationId)) return null;
      const messages = (stored.messages || []).filter((m) => m && (m.role === "user" || m.role === "assistant"));
      return { conversationId: stored.conversationId, messages };
    } catch {
      return null;
    }
  }

  save() {
    if (!this.persist) return;
    const messages = this.messages
      .filter((m) => !m.pending)
      .slice(-MAX_STORED_MESSAGES)
      .map(({ role, text, messageId, rating, flagged }) => ({ role, text, messageId, rating, flagged }));
    try {
      const value = { version: STORAGE_VERSION, conversationId: this.conversationId, messages };
      localStorage.setItem(this.storageKey, JSON.stringify(value));
    } catch {
      // storage full or blocked: the conversation goes on, it just will not survive a reload
    }
  }

  // -- errors ----------------------------------------------------------------------------

  fail(error) {
    const { connection } = describeError(error);
    if (connection) this.disconnect();
    this.showError(error);
  }

  showError(error) {
    this.errorBox.textContent = describeError(error).text;
    this.errorBox.hidden = false;
  }

  clearError() {
    this.errorBox.hidden = true;
    this.errorBox.textContent = "";
  }

  showInfo(text) {
    this.infoBox.textContent = text;
    this.infoBox.hidden = false;
  }

  clearInfo() {
    this.infoBox.hidden = true;
    this.infoBox.textContent = "";
  }

  // -- rendering -------------------------------------------------------------------------

  render() {
    this.log = h("ol", { class: "fw-log", role: "log", "aria-live": "polite", "aria-label": "Messages" });
    this.errorBox = h("div", { class: "fw-error", role: "alert", hidden: true });
    this.infoBox = h("div", { class: "fw-info", role: "status", hidden: true });
    this.input = h("textarea", {
      class: "fw-input",
      rows: 2,
      "aria-label": "Message",
      placeholder: this.placeholder,
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.submitInput();
        }
      },
    });
    this.sendButton = h("button", { class: "fw-send", type: "submit" }, "Send");
    const form = h("form", { class: "fw-form", onsubmit: (event) => (event.preventDefault(), this.submitInput()) });
    form.append(this.input, this.sendButton);
    this.newButton = h("button", { class: "fw-new", type: "button", onclick: () => this.newConversation() }, "New conversation");
    this.forgetButton = h(
      "button",
      { class: "fw-forget", type: "button", "aria-expanded": "false", onclick: () => this.askForget(this.forgetConfirm.hidden) },
      "Forget this conversation",
    );
    this.forgetConfirm = h(
      "div",
      { class: "fw-forget-confirm", role: "group", "aria-label": "Forget this conversation?", hidden: true },
      h("span", {}, FORGET_QUESTION),
      h(
        "div",
        { class: "fw-forget-buttons" },
        h("button", { class: "fw-forget-yes", type: "button", onclick: () => this.forget() }, "Delete it"),
        h("button", { class: "fw-forget-no", type: "button", onclick: () => this.askForget(false) }, "Cancel"),
      ),
    );
    this.root = h(
      "section",
      { class: "fw", "aria-label": this.title },
      h(
        "header",
        { class: "fw-header" },
        h("span", { class: "fw-title" }, this.title),
        h("span", { class: "fw-header-buttons" }, this.forgetButton, this.newButton),
      ),
      this.forgetConfirm,
      this.notice ? h("p", { class: "fw-notice" }, this.notice) : null,
      this.log,
      this.infoBox,
      this.errorBox,
      form,
    );
    this.element.replaceChildren(this.root);
    this.setBusy(false);
    this.renderMessages();
  }

  submitInput() {
    const text = this.input.value;
    if (this.busy || !text.trim()) return;
    this.input.value = "";
    this.send(text);
  }

  setBusy(busy) {
    this.busy = busy;
    this.root.dataset.busy = String(busy);
    this.sendButton.disabled = busy;
    this.newButton.disabled = busy;
    this.forgetButton.disabled = busy;
    for (const button of this.forgetConfirm.querySelectorAll("button")) button.disabled = busy;
  }

  renderMessages() {
    this.root.dataset.conversationId = this.conversationId;
    const views = new Map();
    const items = this.messages.map((message) => {
      const view = this.views.get(message) ?? this.messageView(message);
      views.set(message, view);
      return view.item;
    });
    this.views = views;
    this.log.replaceChildren(...items);
    for (const message of this.messages) this.updateMessage(message);
    this.log.scrollTop = this.log.scrollHeight;
  }

  messageView(message) {
    const bubble = h("div", { class: "fw-bubble" });
    const item = h("li", { class: `fw-msg fw-${message.role}` }, bubble);
    const view = { item, bubble };
    if (message.role === "assistant") Object.assign(view, this.replyControls(message, item));
    return view;
  }

  replyControls(reply, item) {
    const button = (name, label, onclick) =>
      h("button", { class: `fw-${name}`, type: "button", "aria-label": label, title: label, onclick }, icon(name));
    const like = button("like", "Like", () => this.rate(reply, "like"));
    const dislike = button("dislike", "Dislike", () => this.rate(reply, "dislike"));
    const flag = button("flag", "Flag", () => this.toggleFlagForm(reply));
    const regenerate = button("regenerate", "Regenerate", () => this.regenerate(reply));
    const status = h("span", { class: "fw-status", "aria-live": "polite" });
    const actions = h("div", { class: "fw-actions", role: "group", "aria-label": "Feedback on this reply" });
    actions.append(like, dislike, flag, regenerate, status);
    const flagForm = h("form", {
      class: "fw-flag-form",
      hidden: true,
      "aria-label": "Flag this reply",
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(flagForm);
        this.flag(reply, data.getAll("reason"), String(data.get("comment") || "").trim());
      },
    });
    item.append(actions, flagForm);
    return { like, dislike, flag, regenerate, status, flagForm };
  }

  async toggleFlagForm(reply) {
    const view = this.views.get(reply);
    if (!view.flagForm.hidden) {
      view.flagForm.hidden = true;
      this.updateMessage(reply);
      return;
    }
    try {
      await this.connect();
    } catch (error) {
      this.fail(error);
      return;
    }
    this.fillFlagForm(reply, view.flagForm);
    view.flagForm.hidden = false;
    this.updateMessage(reply);
    view.flagForm.scrollIntoView({ block: "nearest" });
    view.flagForm.querySelector("input")?.focus();
  }

  fillFlagForm(reply, form) {
    const reasons = this.feedbackOptions?.reasons ?? [];
    const send = h("button", { class: "fw-flag-send", type: "submit", disabled: true }, "Send flag");
    const checkboxes = reasons.map((reason) =>
      h("label", {}, h("input", { type: "checkbox", name: "reason", value: reason }), ` ${reason}`),
    );
    const fieldset = h("fieldset", {}, h("legend", {}, "What is wrong with this reply?"), ...checkboxes);
    fieldset.addEventListener("change", () => {
      send.disabled = !form.querySelector("input[name=reason]:checked");
    });
    const comment = h("textarea", { name: "comment", rows: 2, "aria-label": "Comment", placeholder: "Comment (optional)" });
    const cancel = h("button", { class: "fw-flag-cancel", type: "button", onclick: () => this.toggleFlagForm(reply) }, "Cancel");
    form.replaceChildren(fieldset, comment, h("div", { class: "fw-flag-buttons" }, send, cancel));
  }

  updateMessage(message) {
    const view = this.views.get(message);
    if (!view) return;
    view.bubble.textContent = message.text || (message.pending ? "…" : "");
    if (message.role !== "assistant") return;
    const { item, like, dislike, flag, regenerate, status, flagForm } = view;
    const ready = Boolean(message.messageId) && !message.pending;
    item.dataset.state = message.pending ? "streaming" : "done";
    if (message.messageId) item.dataset.messageId = message.messageId;
    else delete item.dataset.messageId;
    like.setAttribute("aria-pressed", String(message.rating === "like"));
    dislike.setAttribute("aria-pressed", String(message.rating === "dislike"));
    flag.setAttribute("aria-pressed", String(Boolean(message.flagged)));
    flag.setAttribute("aria-expanded", String(!flagForm.hidden));
    for (const control of [like, dislike, flag]) control.disabled = !ready || Boolean(message.sending);
    regenerate.hidden = message !== this.lastReply();
    regenerate.disabled = !ready || this.busy;
    for (const control of flagForm.querySelectorAll("button[type=submit]")) {
      control.disabled = Boolean(message.sending) || !flagForm.querySelector("input[name=reason]:checked");
    }
    status.textContent = message.flagged ? `Flagged: ${message.flagged.join(", ")}` : "";
  }
}

/** Mount a widget in `element` (see {@link FeedbackChat} for the options); returns it. */
export function mountFeedbackChat(element, options = {}) {
  if (!element.feedbackChat) element.feedbackChat = new FeedbackChat(element, options);
  return element.feedbackChat;
}

function optionsFrom(element) {
  const data = element.dataset;
  return {
    appUrl: data.appUrl || undefined,
    persist: data.persist !== undefined && data.persist !== "false",
    storageKey: data.storageKey || undefined,
    title: data.title,
    notice: data.notice,
    placeholder: data.placeholder,
    consent: consentOption(data.consent),
  };
}

/** Mount a widget in every `[data-feedback-chat]` element of the page (run when this module loads). */
export function mountAll(root = document) {
  return Array.from(root.querySelectorAll("[data-feedback-chat]"), (element) =>
    mountFeedbackChat(element, optionsFrom(element)),
  );
}

function ensureStylesheet() {
  if (document.querySelector("link[data-feedback-chat-css]")) return;
  const href = new URL("feedback-widget.css", SCRIPT_URL).href;
  document.head.append(h("link", { rel: "stylesheet", href, "data-feedback-chat-css": true }));
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => mountAll());
  else mountAll();
}
