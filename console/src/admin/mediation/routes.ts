import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'mediation',
    component: () => import('./MediationPage.vue'),
    // The API shows cases to the village's own admin only (every read audited).
    meta: { group: 'mediation', title: 'mediation.title', order: 100, roles: ['village-admin'] },
  },
] satisfies ScreenRoute[]
