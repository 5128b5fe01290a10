"""The ``lpet`` method: the low-dose input unchanged (Table I's "LPET" row)."""
from petbench import Method, hookimpl


class LowDoseInput(Method):
    name = "lpet"
    description = "The low-dose input itself, unchanged: the reference row every method must beat."
    display_name = "LPET"
    table_places = {1: 10}  # Table I's first row
    efficiency_place = 10

    def predict(self, lpet):
        return lpet


@hookimpl
def register_methods(register):
    register(LowDoseInput)
