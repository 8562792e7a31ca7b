// A form's refusals by field ('' = the whole form), as el-form-item :error and van-field
// :error-message show them. A field's message is about the value the API refused: once the
// reader changes that value it no longer applies, and the field stops being marked at once,
// not only when the form is sent again.
import { ref, toValue, watch, type MaybeRefOrGetter, type Ref } from 'vue'

/** Each field's value as text, to tell a changed one from the one refused. */
function snapshot(form: object): Record<string, string> {
  return Object.fromEntries(Object.entries(form).map(([field, value]) => [field, JSON.stringify(value) ?? '']))
}

/**
 * The refusals of the form whose values `form` holds (its keys the input's fields). Set it
 * to a mutation's `errors`; a refusal of a field of the form is dropped when that field
 * changes. One the form has no field for, and the whole form's, stay until set again.
 */
export function useRefusals(form: MaybeRefOrGetter<object>): Ref<Record<string, string>> {
  const errors = ref<Record<string, string>>({})
  let refused: Record<string, string> = {}
  watch(errors, () => {
    refused = snapshot(toValue(form))
  })
  watch(
    () => snapshot(toValue(form)),
    (values) => {
      const kept = Object.entries(errors.value).filter(
        ([field]) => !(field in values) || values[field] === refused[field],
      )
      if (kept.length < Object.keys(errors.value).length) errors.value = Object.fromEntries(kept)
    },
  )
  return errors
}

/**
 * What a phone dialog with one field shows beside it: that field's refusal, else the
 * others (the whole form's, another field's) on the same line.
 */
export function fieldRefusal(refusals: Record<string, string>, field: string): string {
  return refusals[field] ?? Object.values(refusals).join('；')
}
