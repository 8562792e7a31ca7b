import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'escalated-requests',
    component: () => import('./EscalatedRequestsPage.vue'),
    meta: { group: 'regionRequests', title: 'region.escalated', order: 40 },
  },
] satisfies ScreenRoute[]
