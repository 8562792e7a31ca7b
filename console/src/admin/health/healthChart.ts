// The readings chart of one person: a range the admin picks turned into the API's
// [from, to) and bucket, and the API's buckets turned into ECharts line series (heart
// rate average, lowest SpO2, highest blood pressure), with gaps where no reading came.

export interface ReadingBucket {
  startsAt: string
  readings: number
  heartRateAvg: number | null
  heartRateMin: number | null
  heartRateMax: number | null
  spo2Min: number | null
  systolicMax: number | null
  diastolicMax: number | null
}

export type ChartRange = 'DAY' | 'WEEK' | 'MONTH'

const RANGES: Record<ChartRange, { days: number; bucket: string }> = {
  DAY: { days: 1, bucket: 'FIFTEEN_MINUTES' },
  WEEK: { days: 7, bucket: 'HOUR' },
  MONTH: { days: 30, bucket: 'DAY' },
}

/** The API's variables for the range ending now. */
export function rangeVariables(range: ChartRange, now: Date = new Date()) {
  const { days, bucket } = RANGES[range]
  const from = new Date(now.getTime() - days * 24 * 3600 * 1000)
  return { from: from.toISOString(), to: now.toISOString(), bucket }
}

export interface SeriesNames {
  heartRate: string
  spo2: string
  systolic: string
  diastolic: string
}

type Field = 'heartRateAvg' | 'spo2Min' | 'systolicMax' | 'diastolicMax'

/** The ECharts option: one line per vital over time; nulls left as gaps. */
export function readingsChart(buckets: ReadingBucket[], names: SeriesNames) {
  const line = (name: string, field: Field) => ({
    name,
    type: 'line',
    showSymbol: buckets.length < 60,
    connectNulls: false,
    data: buckets.map((bucket) => [bucket.startsAt, bucket[field] === null ? null : Math.round(bucket[field] as number)]),
  })
  return {
    tooltip: { trigger: 'axis' },
    legend: { top: 0 },
    grid: { left: 48, right: 24, top: 40, bottom: 32 },
    xAxis: { type: 'time' },
    yAxis: { type: 'value', scale: true },
    series: [
      line(names.heartRate, 'heartRateAvg'),
      line(names.spo2, 'spo2Min'),
      line(names.systolic, 'systolicMax'),
      line(names.diastolic, 'diastolicMax'),
    ],
  }
}
