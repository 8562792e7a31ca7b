import type { ScreenRoute } from '@/console/screens'

export default [
  {
    path: 'agreements',
    component: () => import('./AgreementsPage.vue'),
    meta: { group: 'regionAgreements', title: 'linkage.agreements', order: 50 },
  },
] satisfies ScreenRoute[]
