// 户 at a flat of a building (楼栋, 单元, 室) or at an address in a grid: the drawer's
// form to the API's inputs, blanks left out.

export interface HouseholdForm {
  /** 'building' for a flat of a building, 'address' for a place outside the buildings. */
  place: 'building' | 'address'
  building: string
  unitNo: number | null | undefined
  roomNo: string
  address: string
  grid: string
}

export function emptyHouseholdForm(): HouseholdForm {
  return { place: 'building', building: '', unitNo: 1, roomNo: '', address: '', grid: '' }
}

export function createHouseholdInput(village: string, form: HouseholdForm): Record<string, unknown> {
  if (form.place === 'building') {
    return { village, building: form.building, unitNo: form.unitNo ?? undefined, roomNo: form.roomNo.trim() }
  }
  return { village, address: form.address.trim(), grid: form.grid }
}

export function updateHouseholdInput(id: string, form: HouseholdForm): Record<string, unknown> {
  if (form.place === 'building') {
    return { id, unitNo: form.unitNo ?? undefined, roomNo: form.roomNo.trim() }
  }
  return { id, address: form.address.trim() }
}
