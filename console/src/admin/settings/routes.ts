import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'settings/approvals',
    component: () => import('./ApprovalsPage.vue'),
    meta: { group: 'settings', title: 'settings.approvals', order: 134 },
  },
] satisfies ScreenRoute[]
