import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Plugin, defineConfig } from "vite";

/**
 * Subresource integrity (SECURITY.md WEB-02): each script and stylesheet index.html loads carries
 * `integrity="sha384-..."` of the file as built, so a browser refuses a bundle file changed after
 * the build (on disk, or by whatever serves it), on top of the policy that allows only this origin.
 */
function integrity(): Plugin {
  return {
    name: "gridlease-integrity",
    apply: "build",
    enforce: "post",
    // After the files are written: the hash is of the bytes served, whatever ran before.
    writeBundle(options) {
      const dir = options.dir ?? "dist";
      const page = join(dir, "index.html");
      const html = readFileSync(page, "utf8").replace(
        /<(script|link)\b([^>]*?)\s(src|href)="\.\/([^"]+)"([^>]*)>/g,
        (_tag, el: string, before: string, attr: string, file: string, after: string) => {
          const hash = createHash("sha384").update(readFileSync(join(dir, file))).digest("base64");
          return `<${el}${before} ${attr}="./${file}" integrity="sha384-${hash}"${after}>`;
        },
      );
      writeFileSync(page, html);
    },
  };
}

// A static bundle: no inline script or style (the console is served with a Content-Security-Policy
// that forbids both, SECURITY.md WEB-02), hashed file names with integrity hashes, no source maps.
export default defineConfig({
  base: "./",
  plugins: [integrity()],
  build: {
    outDir: "dist",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
