// Builds ../feedback/web/widget_dist/ (package data: the app serves it at /widget/ and it ships in
// the wheel), or the folder given as the first argument, from src/ and demo/ with esbuild: one ES
// module with @gradio/client bundled in, the stylesheet and the demo page. Runs offline once
// `npm ci` has installed what package-lock.json pins.
import { copyFile, mkdir } from "node:fs/promises";
import { resolve } from "node:path";
import { build } from "esbuild";

const here = new URL(".", import.meta.url).pathname;
const out = resolve(process.argv[2] ?? `${here}../feedback/web/widget_dist`);

await mkdir(out, { recursive: true });
await build({
  entryPoints: [`${here}src/feedback-widget.js`],
  outfile: `${out}/feedback-widget.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["es2022"],
  minify: true,
  legalComments: "eof",
  banner: { js: "/* chat-feedback widget: built from widget/src by `npm run build`; bundles @gradio/client (ISC license). */" },
  logLevel: "warning",
});
await copyFile(`${here}src/feedback-widget.css`, `${out}/feedback-widget.css`);
await copyFile(`${here}demo/index.html`, `${out}/index.html`);
console.log(`built ${out}: feedback-widget.js, feedback-widget.css, index.html`);
