"""A partner's own integration templates: a client's flow saved as a versioned template in the public schema,
offered and deployed to the partner's other clients, installed and upgraded in each client's schema.

`services` and `selectors` keep the public records (tenants' IntegrationTemplate, its versions and
deployments); `workspace` captures and upgrades flows inside one client schema; `forms` are the console's.
"""
