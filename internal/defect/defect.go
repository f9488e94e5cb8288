package defect
