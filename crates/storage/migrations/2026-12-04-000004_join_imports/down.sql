DROP TABLE join_imports;
