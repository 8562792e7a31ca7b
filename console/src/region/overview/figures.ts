// The region's published statistics shaped for the overview's charts: each chart is a
// `Figure` (categories along the axis, one series per colour), drawn as a bar chart and
// shown beside it as a table of the same numbers (the chart's text alternative).

export interface AgeBandCount {
  band: string
  count: number
}
export interface CategoryCount {
  count: number
}
export interface AlertWeekCount {
  week: string
  kind: string
  count: number
}
export interface PublishedStats {
  residents: number | null
  households: number | null
  elderlyLivingAlone: number | null
  volunteerHours: number | null
  pointsBalance: number | null
  residentsByAgeBand: AgeBandCount[]
  requestsOpenByCategory: CategoryCount[]
  requestsOverdueByCategory: CategoryCount[]
  alertsByKindPerWeek: AlertWeekCount[]
}
export interface VillageStats {
  village: { slug: string; name: string }
  computedAt: string | null
  stats: PublishedStats | null
}

export interface Figure {
  categories: string[]
  /** `color`: set where the colour carries meaning (red for overdue). */
  series: { name: string; values: number[]; color?: string }[]
}

const OVERDUE_RED = '#c8262e'

export const ELDERLY_BANDS = ['60-69', '70-79', '80+']

const sum = (counts: CategoryCount[]) => counts.reduce((total, entry) => total + entry.count, 0)
const band = (stats: PublishedStats, name: string) =>
  stats.residentsByAgeBand.find((entry) => entry.band === name)?.count ?? 0

/** Villages that published, in the API's order (those that never did are listed apart). */
export function published(villages: VillageStats[]): (VillageStats & { stats: PublishedStats })[] {
  return villages.filter((entry): entry is VillageStats & { stats: PublishedStats } => entry.stats !== null)
}

/** Alerts by kind per ISO week: weeks in order, one series per kind (`label` names it). */
export function alertsByKindPerWeek(counts: AlertWeekCount[], label: (kind: string) => string): Figure {
  const weeks = [...new Set(counts.map((entry) => entry.week))].sort()
  const kinds = [...new Set(counts.map((entry) => entry.kind))]
  return {
    categories: weeks,
    series: kinds.map((kind) => ({
      name: label(kind),
      values: weeks.map((week) =>
        counts.filter((entry) => entry.week === week && entry.kind === kind).reduce((n, entry) => n + entry.count, 0),
      ),
    })),
  }
}

/** Open requests per village, split into those within and past their deadline. */
export function requestsByVillage(villages: VillageStats[], names: { onTime: string; overdue: string }): Figure {
  const rows = published(villages)
  return {
    categories: rows.map((entry) => entry.village.name),
    series: [
      {
        name: names.onTime,
        values: rows.map((entry) => sum(entry.stats.requestsOpenByCategory) - sum(entry.stats.requestsOverdueByCategory)),
      },
      {
        name: names.overdue,
        values: rows.map((entry) => sum(entry.stats.requestsOverdueByCategory)),
        color: OVERDUE_RED,
      },
    ],
  }
}

/** The elderly per village by age band, and those living alone. */
export function elderlyByVillage(villages: VillageStats[], aloneName: string): Figure {
  const rows = published(villages)
  return {
    categories: rows.map((entry) => entry.village.name),
    series: [
      ...ELDERLY_BANDS.map((name) => ({ name, values: rows.map((entry) => band(entry.stats, name)) })),
      { name: aloneName, values: rows.map((entry) => entry.stats.elderlyLivingAlone ?? 0) },
    ],
  }
}

/** One row of the village comparison table. */
export function comparisonRow(entry: VillageStats) {
  const stats = entry.stats
  return {
    slug: entry.village.slug,
    name: entry.village.name,
    computedAt: entry.computedAt,
    residents: stats?.residents ?? null,
    households: stats?.households ?? null,
    aged60Plus: stats ? ELDERLY_BANDS.reduce((n, name) => n + band(stats, name), 0) : null,
    elderlyLivingAlone: stats?.elderlyLivingAlone ?? null,
    requestsOpen: stats ? sum(stats.requestsOpenByCategory) : null,
    requestsOverdue: stats ? sum(stats.requestsOverdueByCategory) : null,
    volunteerHours: stats?.volunteerHours ?? null,
    pointsBalance: stats?.pointsBalance ?? null,
  }
}

/** A bar chart of `figure` (stacked when the series add up to a whole). */
export function barOption(figure: Figure, stacked: boolean) {
  return {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 48, right: 16, top: 36, bottom: 32 },
    xAxis: { type: 'category', data: figure.categories },
    yAxis: { type: 'value', minInterval: 1 },
    series: figure.series.map((series) => ({
      type: 'bar',
      name: series.name,
      data: series.values,
      stack: stacked ? 'total' : undefined,
      itemStyle: series.color ? { color: series.color } : undefined,
      barMaxWidth: 40,
    })),
  }
}
