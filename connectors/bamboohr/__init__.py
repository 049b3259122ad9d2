"""BambooHR (HR): read-only employee connector and its local sandbox."""
