import { afterEach, describe, expect, it, vi } from 'vitest'
import { errorsByField } from './graphql'
import { firstRefusedField, focusFirstRefused } from './refusedField'

// Two forms as Element Plus leaves them: a closed drawer (display: none) still showing an
// earlier refusal, and the open one, refused on its second and third fields.
const PAGE = `
  <div class="el-overlay" style="display: none">
    <form><div class="el-form-item is-error" id="stale"><input id="stale-input" /></div></form>
  </div>
  <div class="el-overlay">
    <form>
      <div class="el-form-item" id="name"><input id="name-input" /></div>
      <div class="el-form-item is-error" id="phone"><input type="hidden" /><input id="phone-input" /></div>
      <div class="el-form-item is-error" id="address"><textarea id="address-input"></textarea></div>
    </form>
  </div>`

const scrolled: Element[] = []

afterEach(() => {
  document.body.innerHTML = ''
  scrolled.length = 0
  vi.useRealTimers()
})

function page(html: string): void {
  document.body.innerHTML = html
  // jsdom lays nothing out and has no scrollIntoView: record which element asked for it.
  Element.prototype.scrollIntoView = function (this: Element) {
    scrolled.push(this)
  }
}

describe('firstRefusedField', () => {
  it('is the first refused field of the open form, not one in a closed drawer', () => {
    page(PAGE)
    expect(firstRefusedField()?.id).toBe('phone')
  })

  it('finds a refused Vant field on the phone', () => {
    page('<div class="van-field"></div><div class="van-field van-field--error" id="text"><textarea></textarea></div>')
    expect(firstRefusedField()?.id).toBe('text')
  })

  it('is null when no field is refused', () => {
    page('<form><div class="el-form-item"><input /></div></form>')
    expect(firstRefusedField()).toBeNull()
  })
})

describe('focusFirstRefused', () => {
  it('scrolls to the first refused field and focuses its input', () => {
    page(PAGE)
    expect(focusFirstRefused()).toBe(true)
    expect(scrolled.map((element) => element.id)).toEqual(['phone'])
    expect(document.activeElement?.id).toBe('phone-input')
  })

  it('leaves the page alone when nothing is refused', () => {
    page('<form><div class="el-form-item"><input id="only" /></div></form>')
    expect(focusFirstRefused()).toBe(false)
    expect(scrolled).toEqual([])
    expect(document.activeElement).toBe(document.body)
  })
})

describe('errorsByField', () => {
  it('takes the reader to the refused field once the form has shown it', () => {
    vi.useFakeTimers()
    page('<form><div class="el-form-item" id="phone"><input id="phone-input" /></div></form>')
    const errors = errorsByField([{ field: 'input.phone', message: '手机号格式不对', code: 'INVALID' }])
    expect(errors).toEqual({ phone: '手机号格式不对' })
    // The form marks the field when it renders the message, after errorsByField returned.
    document.getElementById('phone')?.classList.add('is-error')
    expect(document.activeElement).toBe(document.body)
    vi.runAllTimers()
    expect(document.activeElement?.id).toBe('phone-input')
  })

  it('moves nothing for a refusal of the whole input', () => {
    vi.useFakeTimers()
    page('<form><div class="el-form-item is-error" id="stale"><input id="stale-input" /></div></form>')
    expect(errorsByField([{ field: null, message: '没有权限', code: 'FORBIDDEN' }])).toEqual({ '': '没有权限' })
    vi.runAllTimers()
    expect(document.activeElement).toBe(document.body)
  })
})
