// 村庄信息: the form's values as updateVillage's input: only what changed, and an emptied
// address or phone as null (which clears it), never "" (which the API would check).

export interface VillageInfo {
  name: string
  address: string | null
  contactPhone: string | null
}

export function villageChanges(before: VillageInfo, form: VillageInfo): Partial<VillageInfo> {
  const changes: Partial<VillageInfo> = {}
  const name = form.name.trim()
  if (name !== before.name) changes.name = name
  for (const field of ['address', 'contactPhone'] as const) {
    const value = (form[field] ?? '').trim() || null
    if (value !== before[field]) changes[field] = value
  }
  return changes
}
