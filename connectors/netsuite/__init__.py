"""NetSuite (ERP): SuiteTalk REST connector and its local sandbox."""
