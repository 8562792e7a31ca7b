import { RouterView } from 'vue-router'
import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'residents',
    component: RouterView,
    meta: { group: 'residents', title: 'residents.residents', order: 20 },
    children: [
      { path: '', component: () => import('./ResidentsPage.vue') },
      { path: ':id', component: () => import('./ResidentDetailPage.vue'), props: true },
    ],
  },
] satisfies ScreenRoute[]
