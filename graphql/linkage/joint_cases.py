"""In progress (five-village linkage, #6)."""

bindables: list = []
