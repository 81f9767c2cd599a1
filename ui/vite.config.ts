// The dashboard's build. The binary embeds ui/dist under fixed names (see
// crates/tollgate-server/src/http/ui.rs), so the output is one script and one stylesheet
// with no hash in their names and no chunks split off, served under /ui/.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // The preload polyfill is for split chunks, which there are none of.
    modulePreload: false,
    cssCodeSplit: false,
    // Nothing inlined as a data: URL: every asset is a file ui.rs serves.
    assetsInlineLimit: 0,
    reportCompressedSize: false,
    rolldownOptions: {
      output: {
        entryFileNames: "app.js",
        assetFileNames: "app[extname]",
        codeSplitting: false,
      },
    },
  },
});
