"""ServiceNow: time worked on incidents and tasks, over the Table API."""
