import { describe, expect, it } from 'vitest'
import { importPercent } from './importSheet'

describe('importPercent', () => {
  it('is nothing until the job has counted the rows', () => {
    expect(importPercent({ status: 'QUEUED', totalRows: null, processedRows: 0 })).toBe(0)
  })

  it('follows the rows done while running, never past 100', () => {
    expect(importPercent({ status: 'RUNNING', totalRows: 200, processedRows: 50 })).toBe(25)
    expect(importPercent({ status: 'RUNNING', totalRows: 3, processedRows: 2 })).toBe(66)
  })

  it('is whole once finished or failed', () => {
    expect(importPercent({ status: 'FAILED', totalRows: null, processedRows: 0 })).toBe(100)
    expect(importPercent({ status: 'FINISHED', totalRows: 10, processedRows: 10 })).toBe(100)
  })
})
