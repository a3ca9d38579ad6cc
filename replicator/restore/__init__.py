"""Restore and replicate: plans built from the snapshot store, executed by THE loader into an org.

selection.py picks the backed-up records (by Id, by a bound filter, with their children and missing
parents), target.py reads what the target org holds today, model.py and order.py turn its describe
into writable fields and a parent-first order with cycles broken, plan.py assembles the loader's
LoadPlan and what the user is shown, job.py runs it and keeps the restores ledger, replicate.py
streams a whole snapshot into another org.
"""
