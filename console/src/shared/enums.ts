// The Chinese label of every enum value, from the API (`enumLabels`), loaded once:
// no client keeps its own copy of the domain's words.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { request } from './graphql'
import { currentLocale } from './i18n'
import enumLabelsDocument from './enumLabels.graphql?raw'

interface EnumLabel {
  enum: string
  value: string
  label: string
}

export const useEnumLabels = defineStore('enumLabels', () => {
  const labels = ref<Record<string, string>>({})
  let loading: Promise<void> | null = null

  function load(): Promise<void> {
    loading ??= request<{ enumLabels: EnumLabel[] }>(enumLabelsDocument).then((data) => {
      labels.value = Object.fromEntries(
        data.enumLabels.map((entry) => [`${entry.enum}.${entry.value}`, entry.label]),
      )
    })
    return loading
  }

  /** The label of `value` of `enumName` (English readers get the value, readable). */
  function label(enumName: string, value: string | null | undefined): string {
    if (!value) return '—'
    if (currentLocale() === 'en') return value.toLowerCase().replaceAll('_', ' ')
    return labels.value[`${enumName}.${value}`] ?? value
  }

  return { labels, load, label }
})
