// The public API of src/image; filled in as the area lands.
export {};
