/// <reference types="vitest/config" />
// One build, several apps: the staff consoles (index.html, served at /console/) and,
// beside it, every other entry folder with an index.html (the residents' app at /h5/).
// Element Plus and Vant are imported on demand, as their docs show, so each route's
// chunk carries only the components it uses.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import vue from '@vitejs/plugin-vue'
import { VantResolver } from '@vant/auto-import-resolver'
import AutoImport from 'unplugin-auto-import/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import Components from 'unplugin-vue-components/vite'
import { defineConfig, type Plugin } from 'vite'

const entries = ['index.html', 'h5/index.html', 'graphiql/index.html']
const input = Object.fromEntries(
  entries
    .filter((file) => existsSync(resolve(__dirname, file)))
    .map((file) => [file.replace(/\/?index\.html$/, '') || 'console', resolve(__dirname, file)]),
)

// Vant's icon font embeds a woff2 and names a CDN copy after it; Chromium asks for that
// copy anyway, which the console's Content-Security-Policy refuses (and the browser tests
// fail on). The embedded font is all the console needs: the CDN source is dropped.
const vantIconsFromTheBuild: Plugin = {
  name: 'vant-icons-from-the-build',
  enforce: 'pre',
  transform(code, id) {
    if (!/[\\/]vant[\\/].*\.css$/.test(id)) return null
    return code.replace(/,url\(\/\/at\.alicdn\.com[^)]*\) format\("woff"\)/g, '')
  },
}

export default defineConfig({
  base: '/',
  plugins: [
    vantIconsFromTheBuild,
    vue(),
    AutoImport({ resolvers: [ElementPlusResolver()], dts: false }),
    Components({ resolvers: [ElementPlusResolver(), VantResolver()], dts: false }),
  ],
  resolve: { alias: { '@': resolve(__dirname, 'src') } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    rollupOptions: { input },
    chunkSizeWarningLimit: 1200,
  },
  server: {
    // `npm run dev` against a running `make run`.
    proxy: {
      '/graphql': 'http://127.0.0.1:8000',
      '/dev-issuer': 'http://127.0.0.1:8000',
      '/console/config.json': 'http://127.0.0.1:8000',
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.spec.ts'],
  },
})
