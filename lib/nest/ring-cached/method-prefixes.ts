import { ringCachedMethodChain, type RingCachedMethod } from './ring-cached.decorator.js';

/** The key prefixes of `@RingCached` methods, inherited ones included (computed once per subclass). */
export class MethodPrefixes {
  /** Default prefixes of inherited methods, per subclass. */
  private readonly inherited = new WeakMap<Function, Map<RingCachedMethod, string>>();

  /**
   * The method's prefix for an instance of `type`. The default names the class called, not
   * the one declaring the method: `UserRepo` and `OrderRepo` that inherit `findOne` from one
   * base class must not answer each other's calls. Computed once per subclass.
   */
  of(method: RingCachedMethod, type: Function): string {
    if (type === method.declaringClass || method.options.prefix !== undefined) {
      return method.prefix;
    }
    let prefixes = this.inherited.get(type);
    if (prefixes === undefined) this.inherited.set(type, (prefixes = new Map()));
    let prefix = prefixes.get(method);
    if (prefix === undefined) {
      // Every cached layer a call of `type` goes through needs a key of its own: a layer
      // reached through `super` that shared the key of the layer above would join that
      // layer's flight on a miss and wait on itself. The nearest layer takes the class's
      // name; the ones below add their own class's name (and depth, should two share one).
      const name = `${type.name}.${method.methodName}`;
      const chain = ringCachedMethodChain(type, method.methodName);
      const depth = chain.indexOf(method);
      const namesake = chain.filter((m) => m.className === method.className).length > 1;
      prefix =
        depth <= 0 ? `${name}:` : `${name}@${method.className}${namesake ? `#${depth}` : ''}:`;
      prefixes.set(method, prefix);
    }
    return prefix;
  }
}
