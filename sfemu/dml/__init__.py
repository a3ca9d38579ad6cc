"""The DML engine: the only code that writes records on behalf of API calls.

Dependencies point one way: `engine` (the calls) -> `save` (one staged insert or update) and
`automations` (validation rules, triggers, flows... fired around each save) -> `hooks` (what a
save shows automations) -> `results` (per-row outcomes); `sql` holds the SQL fragments they
share. Automations implement `hooks.AutomationHooks` and reach the engine only through
`hooks.Writer`, so nothing here imports the engine.
"""
