// Latest vitals as the residents' app lists them, mine and a family member's alike: one
// row per vital that has a value, with its unit, in the order a nurse reads them.
export interface LatestVitals {
  measuredAt: string
  heartRate: number | null
  spo2: number | null
  systolic: number | null
  diastolic: number | null
}

export interface VitalRow {
  /** An i18n key under h5Mine. */
  label: 'heartRate' | 'spo2' | 'bloodPressure'
  value: string
  /** The i18n key under h5Mine that puts the value with its unit, e.g. `{value} 次/分`. */
  unit: 'perMinute' | 'percent' | 'mmHg'
}

export function vitalRows(vitals: LatestVitals): VitalRow[] {
  const rows: VitalRow[] = []
  if (vitals.heartRate !== null) rows.push({ label: 'heartRate', value: String(vitals.heartRate), unit: 'perMinute' })
  if (vitals.spo2 !== null) rows.push({ label: 'spo2', value: String(vitals.spo2), unit: 'percent' })
  if (vitals.systolic !== null && vitals.diastolic !== null) {
    rows.push({ label: 'bloodPressure', value: `${vitals.systolic}/${vitals.diastolic}`, unit: 'mmHg' })
  }
  return rows
}
