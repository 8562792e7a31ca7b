"""Joint cases (难事部门联动): a request that spans villages, kept in the village that
opened it, visible and updatable by every involved village and the coordinators."""
