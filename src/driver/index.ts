// The public API of src/driver; filled in as the area lands.
export {};
