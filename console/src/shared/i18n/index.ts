// zh-CN first; English is a switch in the user menu, kept on the device.
import { createI18n } from 'vue-i18n'
import en from './en'
import zhCN from './zh-CN'

export type Locale = 'zh-CN' | 'en'
const STORAGE_KEY = 'villagelink.locale'

const saved = typeof localStorage !== 'undefined' ? localStorage.getItem(STORAGE_KEY) : null

export const i18n = createI18n({
  legacy: false,
  locale: saved === 'en' ? 'en' : 'zh-CN',
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zhCN, en },
})

// Each screen folder keeps its own words in a messages.ts beside it, under its own
// namespace ({ namespace, 'zh-CN': {...}, en: {...} }), merged here.
interface ScreenMessages {
  namespace: string
  'zh-CN': Record<string, unknown>
  en: Record<string, unknown>
}
const screens = import.meta.glob<ScreenMessages>('../../**/messages.ts', {
  eager: true,
  import: 'default',
})
for (const screen of Object.values(screens)) {
  for (const locale of ['zh-CN', 'en'] as const) {
    i18n.global.mergeLocaleMessage(locale, { [screen.namespace]: screen[locale] })
  }
}

export function currentLocale(): Locale {
  return i18n.global.locale.value === 'en' ? 'en' : 'zh-CN'
}

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  localStorage.setItem(STORAGE_KEY, locale)
  document.documentElement.lang = locale
}
