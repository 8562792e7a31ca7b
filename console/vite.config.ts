/// <reference types="vitest/config" />
// One build, several apps: the staff consoles (index.html, served at /console/) and,
// beside it, every other entry folder with an index.html (the residents' app at /h5/).
// Element Plus and Vant are imported on demand, as their docs show, so each route's
// chunk carries only the components it uses.
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { constants } from 'node:zlib'
import vue from '@vitejs/plugin-vue'
import { VantResolver } from '@vant/auto-import-resolver'
import AutoImport from 'unplugin-auto-import/vite'
import { ElementPlusResolver } from 'unplugin-vue-components/resolvers'
import Components from 'unplugin-vue-components/vite'
import { defineConfig } from 'vite'
import { compression, defineAlgorithm } from 'vite-plugin-compression2'

const entries = ['index.html', 'h5/index.html', 'graphiql/index.html']
const input = Object.fromEntries(
  entries
    .filter((file) => existsSync(resolve(__dirname, file)))
    .map((file) => [file.replace(/\/?index\.html$/, '') || 'console', resolve(__dirname, file)]),
)

// Vant's icon font names a copy on Alibaba's CDN after its inline one: the console loads
// nothing from third parties (its Content-Security-Policy would refuse it, and villages'
// networks may not reach it), so that source is dropped from every @font-face.
const selfHostedFonts = {
  postcssPlugin: 'self-hosted-fonts',
  AtRule: {
    'font-face': (rule: { walkDecls: (prop: string, visit: (decl: { value: string }) => void) => void }) => {
      rule.walkDecls('src', (decl) => {
        decl.value = decl.value
          .split(/,(?=\s*url\()/)
          .filter((source) => !/url\(\s*['"]?(https?:)?\/\//.test(source))
          .join(',')
      })
    },
  },
}

export default defineConfig({
  base: '/',
  css: { postcss: { plugins: [selfHostedFonts] } },
  plugins: [
    vue(),
    AutoImport({ resolvers: [ElementPlusResolver()], dts: false }),
    Components({ resolvers: [ElementPlusResolver(), VantResolver()], dts: false }),
    // A .br and a .gz beside every text file of the build, made once here: the gateway
    // sends the one a browser accepts (platform/console.py) and compresses nothing per
    // request. Brotli at 9, not its slowest 11: a few percent larger for a fraction of
    // the build time, which the browser tests' first run waits for. Below 1 KB the
    // headers outweigh the saving.
    compression({
      algorithms: [
        defineAlgorithm('brotliCompress', { params: { [constants.BROTLI_PARAM_QUALITY]: 9 } }),
        'gzip',
      ],
      threshold: 1024,
      logLevel: 'silent',
    }),
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
