import type { ScreenRoute } from '@/console/screens'

// 五村联动: one menu group, its screens in the order a village admin works through them.
const meta = (title: string, order: number) => ({ group: 'linkage', title: `linkage.${title}`, order })

export default [
  { path: 'linkage/neighbours', component: () => import('./NeighboursPage.vue'), meta: meta('neighbours', 120) },
  { path: 'linkage/agreements', component: () => import('./AgreementsPage.vue'), meta: meta('agreements', 121) },
  { path: 'linkage/feed', component: () => import('./FeedPage.vue'), meta: meta('feed', 122) },
  { path: 'linkage/exchange-log', component: () => import('./ExchangeLogPage.vue'), meta: meta('exchangeLog', 123) },
  { path: 'linkage/transfers', component: () => import('./TransfersPage.vue'), meta: meta('transfers', 124) },
  { path: 'linkage/joint-cases', component: () => import('./JointCasesPage.vue'), meta: meta('jointCases', 125) },
] satisfies ScreenRoute[]
