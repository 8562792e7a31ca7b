import { describe, expect, it } from 'vitest'
import { createInput, emptyForm, residentFilter, updateInput, valuesOf } from './residentForm'

describe('resident form', () => {
  it('creates with the required fields and leaves blanks out', () => {
    const form = { ...emptyForm(), name: ' 张三 ', idNumber: '110101199003071234' }
    expect(createInput('xinghua', form)).toEqual({
      village: 'xinghua',
      name: '张三',
      idNumber: '110101199003071234',
    })
  })

  it('updates only what changed, never the masked phone left as it was', () => {
    const before = { ...emptyForm(), name: '张三', phone: '138****5678', relationToHead: 'HEAD' }
    expect(updateInput('UmVz', { ...before, name: '张叁' }, before)).toEqual({
      id: 'UmVz',
      name: '张叁',
    })
    expect(updateInput('UmVz', { ...before, phone: '13900001111' }, before)).toEqual({
      id: 'UmVz',
      phone: '13900001111',
    })
  })

  it('turns the filter row into a ResidentFilter without empty values', () => {
    expect(residentFilter({ name: '', grid: 'R3', tag: '', ageMin: 60, ageMax: null })).toEqual({
      grid: 'R3',
      ageMin: 60,
    })
  })

  it('lists an enum’s values from the labels', () => {
    const labels = { 'Gender.MALE': '男', 'ResidentTagKind.DISABLED': '残疾', 'ResidentTagKind.LOW_INCOME': '低保' }
    expect(valuesOf(labels, 'ResidentTagKind')).toEqual(['DISABLED', 'LOW_INCOME'])
  })
})
