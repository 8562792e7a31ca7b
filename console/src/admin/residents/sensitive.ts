// 查看: a masked 身份证号 or 手机号 is shown whole only with a reason (at least 4
// characters, as the API requires), which the API writes to the audit log.
import { ElMessageBox } from 'element-plus'
import { i18n } from '@/shared/i18n'

export const MIN_REASON_LENGTH = 4

export function isReason(value: string | null | undefined): boolean {
  return (value ?? '').trim().length >= MIN_REASON_LENGTH
}

/** The reason the admin gives, or null when they cancel. */
export async function askReason(): Promise<string | null> {
  const { t } = i18n.global
  try {
    const { value } = await ElMessageBox.prompt(t('common.reasonHint'), t('common.reason'), {
      confirmButtonText: t('common.confirm'),
      cancelButtonText: t('common.cancel'),
      inputPlaceholder: t('residents.reasonPlaceholder'),
      inputValidator: (input: string) => isReason(input) || t('common.reasonHint'),
    })
    return value.trim()
  } catch {
    return null
  }
}
