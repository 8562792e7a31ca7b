import { RouterView } from 'vue-router'
import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'health',
    component: RouterView,
    meta: { group: 'health', title: 'health.title', order: 60 },
    children: [
      { path: '', component: () => import('./HealthPage.vue') },
      { path: ':id', component: () => import('./HealthPersonPage.vue'), props: true },
    ],
  },
] satisfies ScreenRoute[]
