import { createPinia } from 'pinia'
import { createApp } from 'vue'
import 'element-plus/theme-chalk/el-message.css'
import 'element-plus/theme-chalk/el-message-box.css'
import 'element-plus/theme-chalk/el-notification.css'
import 'element-plus/theme-chalk/el-loading.css'
import 'vant/es/toast/style'
import 'vant/es/dialog/style'
import 'vant/es/notify/style'
import '@/shared/base.css'
import { useApp } from '@/shared/auth'
import { i18n } from '@/shared/i18n'
import App from './App.vue'
import { router } from './router'

useApp('console')
createApp(App).use(createPinia()).use(i18n).use(router).mount('#app')
