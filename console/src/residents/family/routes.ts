import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'family',
    component: () => import('./FamilyPage.vue'),
    meta: { title: 'h5Family.title', order: 51 },
  },
] satisfies ScreenRoute[]
