/**
 * Lru: a small least-recently-used map (Map keeps insertion order; a hit moves the key to the
 * end). client-go's event caches are LRUs of 4096 entries; ours are too, so memory stays bounded
 * however many distinct objects and messages the node sees. Not an Effect service: plain,
 * synchronous state owned by one module. May import: nothing.
 */
export class Lru<K, V> {
  private readonly map = new Map<K, V>()
  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity)
  }

  get size(): number {
    return this.map.size
  }

  get(key: K): V | undefined {
    const v = this.map.get(key)
    if (v !== undefined) {
      this.map.delete(key)
      this.map.set(key, v)
    }
    return v
  }

  set(key: K, value: V): void {
    this.map.delete(key)
    this.map.set(key, value)
    if (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K)
  }

  delete(key: K): void {
    this.map.delete(key)
  }
}
