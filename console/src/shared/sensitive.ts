// 查看: a masked 身份证号 or 手机号 is shown whole only with a reason (at least 4
// characters, as the API requires), which the API writes to the audit log; each screen's
// own document re-queries the field with that reason.
import { ElMessageBox } from 'element-plus'
import { request } from './graphql'
import { i18n } from './i18n'

export const MIN_REASON_LENGTH = 4

export function isReason(value: string | null | undefined): boolean {
  return (value ?? '').trim().length >= MIN_REASON_LENGTH
}

/** What the admin types in a prompt (checked by `valid`), or null when they cancel. */
export async function askText(
  message: string,
  title: string,
  valid: (value: string) => boolean = () => true,
  placeholder = '',
): Promise<string | null> {
  const { t } = i18n.global
  try {
    const { value } = await ElMessageBox.prompt(message, title, {
      confirmButtonText: t('common.confirm'),
      cancelButtonText: t('common.cancel'),
      inputPlaceholder: placeholder,
      inputValidator: (input: string) => valid(input ?? '') || message,
    })
    return (value ?? '').trim()
  } catch {
    return null
  }
}

/** The reason the admin gives for 查看, or null when they cancel. */
export function askReason(): Promise<string | null> {
  const { t } = i18n.global
  return askText(t('common.reasonHint'), t('common.reason'), isReason, t('residents.reasonPlaceholder'))
}

export type SensitiveField = 'idNumber' | 'phone'

/** The one field whole, through `node(id)` of a document that takes `reason`. */
export async function reveal(
  document: string,
  field: SensitiveField,
  variables: { id: string; reason: string } & Record<string, unknown>,
): Promise<string | null> {
  const data = await request<{ node: Partial<Record<SensitiveField, string | null>> | null }>(
    document,
    variables,
  )
  return data.node?.[field] ?? null
}
