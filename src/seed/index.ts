// The public API of src/seed; filled in as the area lands.
export {};
