"""monday.com: items and the time tracked on them over the GraphQL API v2."""
