import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'joint-cases',
    component: () => import('./JointCasesPage.vue'),
    meta: { group: 'regionCases', title: 'linkage.jointCases', order: 30 },
  },
] satisfies ScreenRoute[]
