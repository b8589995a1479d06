// Parses the Jenkinsfile with the real Groovy parser and runs it against a stub of the declarative
// pipeline DSL that records what it declares. Prints one JSON document for the test to check.
// Usage: groovy test/jenkins/check-jenkinsfile.groovy Jenkinsfile [PARAM=value ...]
import groovy.json.JsonOutput

class Recorder {
  List calls = []
  Map params = [ENV: 'production', ACTION: 'deploy', ROLE: 'fleet', TAG: 'v1.5.0']
  def methodMissing(String name, Object args) {
    def list = args as List
    def closure = list.find { it instanceof Closure }
    def plain = list.findAll { !(it instanceof Closure) }.collect { it instanceof Map ? it.collectEntries { k, v -> [k, v?.toString()] } : it?.toString() }
    def entry = [name: name, args: plain, children: []]
    calls << entry
    if (closure) {
      def child = new Recorder(params: params)
      closure.delegate = child
      closure.resolveStrategy = Closure.DELEGATE_FIRST
      def result = closure.call()
      entry.children = child.calls
      if (name == 'expression') entry.value = result
    }
    return entry
  }
  def propertyMissing(String name) { return name == 'params' ? params : '${' + name + '}' }
}

def file = new File(args[0])
def shell = new GroovyShell()
def script = shell.parse(file)          // syntax errors fail here, with line and column
def recorder = new Recorder()
args.drop(1).each { pair -> def (k, v) = pair.split('=', 2); recorder.params[k] = v }
script.metaClass.methodMissing = { String name, Object a -> recorder.methodMissing(name, a) }
script.metaClass.propertyMissing = { String name -> recorder.propertyMissing(name) }
script.binding.setVariable('params', recorder.params)
script.run()
println JsonOutput.toJson(recorder.calls)
