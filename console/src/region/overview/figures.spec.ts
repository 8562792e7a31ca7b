import { describe, expect, it } from 'vitest'
import { alertsByKindPerWeek, comparisonRow, elderlyByVillage, requestsByVillage, type VillageStats } from './figures'

const stats = (open: number[], overdue: number[], bands: Record<string, number>, alone: number) => ({
  residents: 100,
  households: 40,
  elderlyLivingAlone: alone,
  volunteerHours: 12.5,
  pointsBalance: 300,
  residentsByAgeBand: Object.entries(bands).map(([band, count]) => ({ band, count })),
  requestsOpenByCategory: open.map((count) => ({ count })),
  requestsOverdueByCategory: overdue.map((count) => ({ count })),
  alertsByKindPerWeek: [],
})

const villages: VillageStats[] = [
  { village: { slug: 'liulin', name: '柳林村' }, computedAt: '2026-12-06T08:00:00+08:00', stats: stats([3, 4], [2], { '60-69': 10, '80+': 2 }, 1) },
  { village: { slug: 'hedong', name: '河东村' }, computedAt: null, stats: null },
  { village: { slug: 'xinghua', name: '杏花村' }, computedAt: '2026-12-06T08:00:00+08:00', stats: stats([1], [], { '70-79': 5 }, 0) },
]

describe('the region overview figures', () => {
  it('put weeks in order and give each kind its series, zero where a week had none', () => {
    const figure = alertsByKindPerWeek(
      [
        { week: '2026-W48', kind: 'FALL', count: 2 },
        { week: '2026-W47', kind: 'FALL', count: 1 },
        { week: '2026-W48', kind: 'SOS', count: 4 },
      ],
      (kind) => `k:${kind}`,
    )
    expect(figure.categories).toEqual(['2026-W47', '2026-W48'])
    expect(figure.series).toEqual([
      { name: 'k:FALL', values: [1, 2] },
      { name: 'k:SOS', values: [0, 4] },
    ])
  })

  it('split open requests into on time and overdue, leaving out villages that never published', () => {
    const figure = requestsByVillage(villages, { onTime: 'on time', overdue: 'overdue' })
    expect(figure.categories).toEqual(['柳林村', '杏花村'])
    expect(figure.series).toEqual([
      { name: 'on time', values: [5, 1] },
      { name: 'overdue', values: [2, 0], color: '#c8262e' },
    ])
  })

  it('count the elderly by band and those living alone', () => {
    const figure = elderlyByVillage(villages, 'alone')
    expect(figure.series.map((series) => series.values)).toEqual([
      [10, 0],
      [0, 5],
      [2, 0],
      [1, 0],
    ])
  })

  it('show a village that never published as missing, not as zero', () => {
    expect(comparisonRow(villages[1]).residents).toBeNull()
    expect(comparisonRow(villages[0])).toMatchObject({ aged60Plus: 12, requestsOpen: 7, requestsOverdue: 2 })
  })
})
