import { describe, expect, it } from 'vitest'
import { createRequestInput, emptyRequestForm } from './form'

describe('the 登记诉求 form', () => {
  it('sends the grid worker channel and leaves blank fields out', () => {
    const form = { ...emptyRequestForm(), category: 'C1', description: ' 路灯不亮 ', reporterName: '  ' }
    expect(createRequestInput('liulin', form)).toEqual({
      village: 'liulin',
      channel: 'GRID_WORKER',
      category: 'C1',
      description: '路灯不亮',
    })
  })

  it('keeps the place and the reporter when given', () => {
    const form = { ...emptyRequestForm(), category: 'C1', grid: 'G1', description: 'x', locationText: '3号楼', reporterPhone: '13800138000' }
    expect(createRequestInput('liulin', form)).toMatchObject({ grid: 'G1', locationText: '3号楼', reporterPhone: '13800138000' })
  })
})
