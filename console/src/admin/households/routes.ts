import { RouterView } from 'vue-router'
import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'households',
    component: RouterView,
    meta: { group: 'residents', title: 'households.households', order: 21 },
    children: [
      { path: '', component: () => import('./HouseholdsPage.vue') },
      { path: ':id', component: () => import('./HouseholdDetailPage.vue'), props: true },
    ],
  },
] satisfies ScreenRoute[]
