import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'duty',
    component: () => import('./DutyPage.vue'),
    meta: { group: 'grid', title: 'duty.title', order: 31 },
  },
] satisfies ScreenRoute[]
