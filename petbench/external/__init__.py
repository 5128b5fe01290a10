"""Outside methods in: the protocol written out for any tool (``petbench split``), and predictions made by
any tool scored and recorded as runs (``petbench import``)."""
