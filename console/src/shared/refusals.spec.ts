import { describe, expect, it } from 'vitest'
import { nextTick, reactive, ref } from 'vue'
import { fieldRefusal, useRefusals } from './refusals'

describe('useRefusals', () => {
  it('drops a refused field’s message once its value changes, and only that one', async () => {
    const form = ref({ name: '', phone: '123', note: '' })
    const errors = useRefusals(form)
    errors.value = { name: '此项为必填项', phone: '手机号格式不正确', '': '保存失败', household: '户不存在' }
    await nextTick()

    form.value.phone = '13800138000'
    await nextTick()
    expect(errors.value).toEqual({ name: '此项为必填项', '': '保存失败', household: '户不存在' })

    form.value.note = '备注'
    await nextTick()
    expect(errors.value).toEqual({ name: '此项为必填项', '': '保存失败', household: '户不存在' })
  })

  it('keeps a message while the value is the refused one, and takes a new one whole', async () => {
    const form = reactive({ name: '张三', tags: ['elderly'] })
    const errors = useRefusals(() => form)
    errors.value = { name: '重名', tags: '标签不存在' }
    await nextTick()

    form.name = '张三丰'
    form.name = '张三'
    await nextTick()
    expect(errors.value).toEqual({ name: '重名', tags: '标签不存在' })

    form.tags.push('disabled')
    await nextTick()
    expect(errors.value).toEqual({ name: '重名' })

    // Sent again and refused again: the values now refused are the ones to compare with.
    errors.value = { tags: '标签不存在' }
    await nextTick()
    form.name = '李四'
    await nextTick()
    expect(errors.value).toEqual({ tags: '标签不存在' })
  })
})

describe('fieldRefusal', () => {
  it('gives the field its own refusal, else every other one on one line', () => {
    expect(fieldRefusal({ code: '签到码不正确', '': '网络异常' }, 'code')).toBe('签到码不正确')
    expect(fieldRefusal({ '': '活动已结束', signUp: '未报名' }, 'code')).toBe('活动已结束；未报名')
    expect(fieldRefusal({}, 'code')).toBe('')
  })
})
