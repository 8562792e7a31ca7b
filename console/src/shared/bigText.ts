// 大字版 (elder-friendly): one switch, kept on the phone, that scales type and touch
// targets through Vant's CSS variables (styles in shared/base.css, `.big-text`).
import { defineStore } from 'pinia'
import { ref, watch } from 'vue'

const KEY = 'villagelink.bigText'

export const useBigText = defineStore('bigText', () => {
  const on = ref(localStorage.getItem(KEY) === '1')
  watch(on, (value) => localStorage.setItem(KEY, value ? '1' : '0'))
  return { on }
})
