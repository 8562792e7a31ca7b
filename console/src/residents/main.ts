// The residents' app (居民端) at /h5/: its own sign-in client, router and tabs; the
// shared request, i18n, format and enum helpers of the consoles.
import { createPinia } from 'pinia'
import { createApp } from 'vue'
import 'vant/es/toast/style'
import 'vant/es/dialog/style'
import 'vant/es/notify/style'
import '@/shared/base.css'
import { useApp } from '@/shared/auth'
import { i18n } from '@/shared/i18n'
import App from './App.vue'
import { startOutbox } from './report/outbox'
import { router } from './router'

useApp('h5')
createApp(App).use(createPinia()).use(i18n).use(router).mount('#app')
startOutbox()

// The app shell and the last-seen pages for a phone without a network (public/h5/sw.js).
if ('serviceWorker' in navigator && import.meta.env.PROD) {
  void navigator.serviceWorker
    .register('/h5/sw.js', { scope: '/h5/' })
    .then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      // What this page loaded before the worker could see it: the worker keeps it.
      const assets = performance
        .getEntriesByType('resource')
        .map((entry) => new URL(entry.name).pathname)
        .filter((path) => path.startsWith('/assets/'))
      registration.active?.postMessage({ assets })
    })
}
