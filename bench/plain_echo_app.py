"""A plain ``gr.ChatInterface`` echo app, for comparing request throughput with chat-feedback."""

import gradio as gr


def echo(message: str, history: list) -> str:
    """Answer with the message."""
    return message


if __name__ == "__main__":
    gr.ChatInterface(echo, api_name="chat").queue(default_concurrency_limit=16).launch()
